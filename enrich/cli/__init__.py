from enrich.cli.main import main
