"""gnuradio.medjscc.codec"""
