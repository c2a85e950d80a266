"""Prints what the event says to print, so that logs can be checked."""

import logging
import sys

logging.getLogger().setLevel(logging.INFO)


def handler(event, context):
    for line in event.get("lines", []):
        print(line)
    if event.get("partial"):
        sys.stdout.write(event["partial"])  # no newline
    if event.get("log"):
        logging.info(event["log"])
    return {"printed": len(event.get("lines", []))}
