"""humanseg web app: build a site dataset, train a site model, and segment videos, in the browser.

    python app.py                      # http://127.0.0.1:7860, workspace ./workspace
    python app.py --workspace DIR --host 0.0.0.0 --port 8080

Three tabs wire the browser to the same library functions the command-line tools use:

1. Site and dataset: plates (uploaded empty-scene images, or estimated from a site clip), actor silhouettes
   (from actor clips with masks, a segmenter, or harvested from the site clip), review/reject, build the dataset.
2. Train: a dataset and a model preset, a time budget or epochs; live loss and validation-F curve, stop, resume.
3. Segment: drop a clip (or give a live camera URL), pick trained models and baselines; side-by-side video,
   overlay/mask videos, PNG zips, an anonymised video, people counts and an occupancy map, and CDnet metrics when
   ground truth is given.

Everything is kept in a per-site workspace folder (see humanseg.workspace), so a restart loses nothing. The app
binds 127.0.0.1 unless told otherwise (``--host``, else ``$GRADIO_SERVER_NAME``; ``--port``, else
``$GRADIO_SERVER_PORT``, else 7860), serves files only from its workspace and temp folders, and never makes a
share link. The page lives in the ``humanseg.ui`` package; the site rules behind it in ``humanseg.site``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_FILE_SIZE = "1gb"


def parse_args(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> argparse.Namespace:
    """The command-line flags (see the module docstring); host and port fall back to Gradio's variables."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(description="humanseg web app (Gradio)")
    parser.add_argument("--workspace", type=Path, help="workspace folder (default $HUMANSEG_WORKSPACE or ./workspace)")
    parser.add_argument(
        "--host",
        help=f"address to bind; 0.0.0.0 exposes the app to the network (default $GRADIO_SERVER_NAME or {DEFAULT_HOST})",
    )
    parser.add_argument("--port", type=int, help=f"port (default $GRADIO_SERVER_PORT or {DEFAULT_PORT})")
    parser.add_argument("--max-file-size", default=DEFAULT_MAX_FILE_SIZE, help="largest upload, e.g. 500mb or 2gb")
    args = parser.parse_args(argv)
    args.host = args.host or env.get("GRADIO_SERVER_NAME") or DEFAULT_HOST
    if args.port is None:
        text = env.get("GRADIO_SERVER_PORT") or str(DEFAULT_PORT)
        if not text.isdigit() or not 0 < int(text) < 65536:
            parser.error(f"GRADIO_SERVER_PORT={text!r} is not a port number (1-65535); fix it or pass --port")
        args.port = int(text)
    return args


if __name__ == "__main__":
    parse_args()  # --help and bad flags answer at once, before the slow imports below (gradio, torch)

from humanseg.ui import APP, CSS, TRAINING, build_demo  # noqa: E402, F401  (APP, TRAINING: for tests and tools)
from humanseg.ui import launch as _launch  # noqa: E402

demo = build_demo()


def launch(
    workspace: str | Path | None = None, host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT, **kwargs: Any
) -> Any:
    """Start this module's ``demo`` (see :func:`humanseg.ui.launch` for the options)."""
    return _launch(demo, workspace, host, port, **kwargs)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    launch(args.workspace, args.host, args.port, max_file_size=args.max_file_size)


if __name__ == "__main__":
    main()
