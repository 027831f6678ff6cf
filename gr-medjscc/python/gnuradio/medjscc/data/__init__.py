"""gnuradio.medjscc.data"""
