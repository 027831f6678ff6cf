"""LDPC parity-check matrices (alist) of the digital baselines and the script that writes them."""
