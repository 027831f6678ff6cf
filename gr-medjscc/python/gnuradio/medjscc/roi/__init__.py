"""gnuradio.medjscc.roi"""
