"""`python -m microsockets asyncapi|typescript module:app`: an app's contract, as files.

python -m microsockets asyncapi example:app --title Chat --version 1.0 > asyncapi.json
python -m microsockets typescript example:app -o events.ts
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from .application import Application
from .contract.typescript import typescript


def load(spec: str) -> Application:
    """The Application named by "module:attribute", imported from the current directory."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"name the app as module:attribute (say example:app), not {spec!r}")
    sys.path.insert(0, str(Path.cwd()))
    app = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(app, Application):
        raise SystemExit(f"{spec} is not a microsockets.Application")
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m microsockets", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    asyncapi = commands.add_parser("asyncapi", help="print the app's AsyncAPI 3.0 document")
    asyncapi.add_argument("app", help="module:attribute, e.g. example:app")
    asyncapi.add_argument("--title", help="the document's title (default: the module's name)")
    asyncapi.add_argument("--version", default="0.0.0", help="the API's version (default 0.0.0)")
    asyncapi.add_argument("-o", "--output", help="write to this file instead of printing")
    types = commands.add_parser("typescript", help="write TypeScript types of the app's events")
    types.add_argument("app", help="module:attribute, e.g. example:app")
    types.add_argument("-o", "--output", help="write to this file instead of printing")
    args = parser.parse_args(argv)
    app = load(args.app)
    if args.command == "asyncapi":
        title = args.title or args.app.partition(":")[0]
        text = json.dumps(app.asyncapi(title=title, version=args.version), indent=2) + "\n"
    else:
        text = typescript(app, args.app)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
