"""``medjscc grc-path``: print the folder to put on GRC_BLOCKS_PATH."""
COMMAND = "grc-path"
HELP = "print the folder with gr-medjscc's GRC .block.yml files (for GRC_BLOCKS_PATH)"


def add_arguments(parser):
    pass


def run(args):
    from ..paths import grc_dir

    print(grc_dir())
