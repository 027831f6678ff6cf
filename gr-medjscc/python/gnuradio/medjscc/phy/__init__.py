"""gnuradio.medjscc.phy"""
