#!/usr/bin/python3
"""Parse every feed under a folder the way feed readers do, and fail when any of
them makes the parser complain.

Usage: check_feeds.py DIR

Feeds are the feed.xml, atom.xml and feed.json files below DIR. RSS and Atom go
through feedparser (the parser behind many feed readers): a feed fails when
feedparser sets `bozo` (it met something it had to work around), does not
recognise the format, or finds no entries or an entry without title, link or
id. Debian's feedparser (6.0.x) has no JSON Feed parser, so feed.json is
checked against the JSON Feed 1.1 rules readers rely on instead. Prints one
line per problem with the file, and exits 1 if there was any; 2 when DIR holds
no feeds.
"""

import json
import os
import sys

import feedparser

XML_FEEDS = {"feed.xml", "atom.xml"}
JSON_FEEDS = {"feed.json"}
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"


def check_xml(path):
    """Return the problems feedparser finds with the RSS or Atom feed at path."""
    parsed = feedparser.parse(path)
    problems = []
    if parsed.bozo:
        problems.append("not well-formed: %s" % parsed.get("bozo_exception"))
    if not parsed.get("version"):
        problems.append("format not recognised")
    if not parsed.feed.get("title"):
        problems.append("feed has no title")
    if not parsed.entries:
        problems.append("no entries")
    for i, entry in enumerate(parsed.entries):
        for key in ("title", "link", "id", "published"):
            if not entry.get(key):
                problems.append("entry %d: no %s" % (i + 1, key))
    return problems


def check_json(path):
    """Return the problems with the JSON Feed at path."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as err:
        return ["not valid JSON: %s" % err]
    if not isinstance(doc, dict):
        return ["not a JSON object"]
    problems = []
    if doc.get("version") != JSON_FEED_VERSION:
        problems.append("version is %r, want %r" % (doc.get("version"), JSON_FEED_VERSION))
    if not isinstance(doc.get("title"), str) or not doc["title"]:
        problems.append("feed has no title")
    items = doc.get("items")
    if not isinstance(items, list) or not items:
        problems.append("no entries")
        items = []
    ids = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append("item %d: not an object" % (i + 1))
            continue
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            problems.append("item %d: no id" % (i + 1))
        elif item_id in ids:
            problems.append("item %d: id %s used twice" % (i + 1, item_id))
        ids.add(item_id)
        if not item.get("content_html") and not item.get("content_text"):
            problems.append("item %d: no content_html or content_text" % (i + 1))
        for key in ("title", "url", "date_published"):
            if not item.get(key):
                problems.append("item %d: no %s" % (i + 1, key))
    return problems


def main(argv):
    if len(argv) != 2:
        print("usage: check_feeds.py DIR", file=sys.stderr)
        return 2
    found = 0
    failed = 0
    for folder, dirs, files in os.walk(argv[1]):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            if name in XML_FEEDS:
                problems = check_xml(path)
            elif name in JSON_FEEDS:
                problems = check_json(path)
            else:
                continue
            found += 1
            for problem in problems:
                failed += 1
                print("%s: %s" % (path, problem))
    if found == 0:
        print("%s: no feeds found" % argv[1])
        return 2
    if failed:
        return 1
    print("%d feeds parsed without a warning" % found)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
