"""``python -m wonkalytics.testing [--host H] [--port N]``: run the fake OpenAI server until Ctrl-C."""

from __future__ import annotations

import argparse

from wonkalytics.testing.fake import serve


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve in the foreground."""
    parser = argparse.ArgumentParser(
        prog="python -m wonkalytics.testing",
        description="Offline OpenAI-compatible server (chat completions, responses, Azure URLs, models).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port, 0 = any free port (default: 8000)")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    serve(args.host, args.port, verbose=not args.quiet)


if __name__ == "__main__":
    main()
