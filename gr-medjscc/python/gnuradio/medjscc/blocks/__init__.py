"""gnuradio.medjscc.blocks"""
