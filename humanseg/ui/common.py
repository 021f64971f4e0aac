"""What every tab of the app shares: the process-wide state, upload handling, and user errors as ``gr.Error``.

Handlers call the Gradio-free library (:mod:`humanseg.site`, :mod:`humanseg.training_job`, ...); the library
raises ``ValueError`` & co. with messages written for the user, and :func:`user_errors` shows them in the
browser. Long library calls take ``progress=True`` (a tqdm bar); a handler declaring ``progress=PROGRESS``
(``gr.Progress(track_tqdm=True)``) shows those bars in the browser.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from humanseg import workspace as ws
from humanseg.training_job import USER_ERRORS, TrainingBusy, TrainingJob

# Gradio spots a progress parameter by its default being a gr.Progress and passes each event its own tracker,
# so one shared marker instance serves every handler; tqdm bars of the library show up in it.
PROGRESS = gr.Progress(track_tqdm=True)
FILE_H = 140  # px: upload boxes stay compact


@dataclass
class AppState:
    """Process-wide settings; ``launch()`` may point ``workspace`` elsewhere before the server starts."""

    # Not created at import: importing the app (tests, tools) must not make folders.
    workspace: Path = field(default_factory=lambda: ws.resolve_workspace(create=False))
    example: bool = True  # preload the example clip in the Segment tab (when examples/data/vtest.avi exists)


APP = AppState()
TRAINING = TrainingJob()  # the app's single training run


_UPLOAD_DIR = re.compile(r"\S*/gradio/[0-9a-f]{32,}/")


def tidy_message(message: str) -> str:
    """Drop Gradio's upload folder from paths in a message, so the user sees their own file name."""
    return _UPLOAD_DIR.sub("", message)


def fail(message: str) -> gr.Error:
    """A user-facing error (no traceback in the server log: it is not a bug)."""
    return gr.Error(message, print_exception=False)


def user_errors(fn: Callable) -> Callable:
    """Turn the library's user-facing errors into ``gr.Error`` so the browser shows what to do and the app
    keeps serving. Works for plain and generator handlers; the signature stays visible to Gradio."""
    caught = (*USER_ERRORS, TrainingBusy)

    def convert(err: BaseException) -> gr.Error:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        return fail(tidy_message(str(message)))

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except caught as err:
                raise convert(err) from err

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except caught as err:
            raise convert(err) from err

    return wrapper


def current_site(name: str | None, create: bool = False) -> ws.Site:
    """The site picked at the top of the page."""
    if not name:
        raise fail("No site selected: pick a site at the top, or type a name and click 'Create site'.")
    return ws.open_site(APP.workspace, name, create=create)


def upload_path(value: Any, what: str) -> Path | None:
    """The local path of an uploaded file (a str, a FileData-like dict or an object with ``.name``)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("path") or value.get("name")
    path = Path(getattr(value, "name", value))
    if not path.is_file():
        raise fail(f"The uploaded {what} could not be found on the server; upload it again.")
    return path


def upload_paths(values: Any, what: str) -> list[Path]:
    if not values:
        return []
    items = values if isinstance(values, list) else [values]
    return [p for v in items if (p := upload_path(v, what)) is not None]


def positive_int(value: Any, what: str, minimum: int = 1) -> int:
    """A whole number >= ``minimum`` typed in a number box."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise fail(f"{what} must be a whole number, got {value!r}.") from None
    if number < minimum or number != float(value):
        raise fail(f"{what} must be a whole number >= {minimum}, got {value!r}.")
    return number


@dataclass
class Page:
    """The page-wide parts the tabs share: the site picker and the site overview, which every tab contributes
    its own refresh to (``refreshers``, each ``site or None -> {component: update}``)."""

    demo: gr.Blocks
    site_dd: gr.Dropdown
    site_info: gr.Markdown
    outputs: list = field(default_factory=list)
    refreshers: list[Callable[[ws.Site | None], dict]] = field(default_factory=list)
    load_outputs: list = field(default_factory=list)
    loaders: list[Callable[[], dict]] = field(default_factory=list)

    def add(self, outputs: list, refresh: Callable[[ws.Site | None], dict]) -> None:
        """A tab's components that change with the site, and the function that fills them."""
        self.outputs += outputs
        self.refreshers.append(refresh)

    def on_load(self, outputs: list, load: Callable[[], dict]) -> None:
        """Components a tab fills when a page opens, after the overview (so ``load`` may change its values)."""
        self.load_outputs += [o for o in outputs if o not in self.outputs]
        self.loaders.append(load)

    def overview(self, site_name: str | None) -> dict:
        """Updates for every component that shows what the site has (on load and when the site changes)."""
        site = current_site(site_name) if site_name in ws.list_sites(APP.workspace) else None
        updates: dict = {}
        for refresh in self.refreshers:
            updates.update(refresh(site))
        return updates
