"""``medjscc report DIR``: write DIR/README.md from a sweep's results."""
COMMAND = "report"
HELP = "write README.md with tables, target checks and figure links for a sweep's results folder"


def add_arguments(parser):
    parser.add_argument("results", nargs="?", default="results", help="folder written by 'medjscc sweep --out'")


def run(args):
    from ..evaluation.report import write_report

    path = write_report(args.results)
    print(path)
    return 0
