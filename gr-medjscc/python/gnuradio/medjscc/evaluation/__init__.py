"""gnuradio.medjscc.evaluation"""
