#!/usr/bin/env python3
"""Command-line entry: `python run.py --help`."""

from pipeline.cli import main

if __name__ == "__main__":
    main()
