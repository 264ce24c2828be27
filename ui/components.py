"""The Gradio components the page is built from, as Gradio's own with two changes.

1. Inputs hand the visitor's raw value to the app instead of checking it. Gradio's own checks (a
   slider's range, a number's type, a dropdown's choices) answer an API client with a generic
   error and log a traceback. These override only the public `preprocess` hook to pass the value
   through; every handler then checks it with `settings` (`as_number`, `as_choice`), so the page
   and the API get the same message: what to change.
2. Every class computes its constructor's signature once. Gradio builds the config of every
   component of the page for each new session (`Block.get_config`, which reads the constructor's
   parameters with `inspect.signature` on every call): with this page's 161 blocks that was about
   20 ms per visitor on the server's event loop, half of it in `inspect`, which a class of thirty
   pressing Decode at once paid thirty times in a row. `inspect.signature` returns a function's
   `__signature__` when it has one (Python's protocol), so each class gets an `__init__` of its
   own that calls Gradio's and carries the signature Gradio's has.

The tabs build every component from this module (a test checks that no block of the page is a
plain Gradio class) but two: the `Form`s Gradio adds itself, and `gr.HTML`, which Gradio treats
as a custom component when subclassed (its config is then built twice, once uncached).
"""

from __future__ import annotations

import inspect

import gradio as gr


def _signature_once(cls):
    """Give `cls` an `__init__` that calls its parent's and carries the parent's signature."""
    parent_init = cls.__init__

    def __init__(self, *args, **kwargs):
        parent_init(self, *args, **kwargs)

    __init__.__signature__ = inspect.signature(parent_init)
    __init__.__doc__ = parent_init.__doc__
    # Set after the class exists: Gradio's metaclass would wrap an __init__ in the class body in its
    # `updateable`, which maps positional arguments by the wrapped function's own (here: none).
    cls.__init__ = __init__
    return cls


class _PassThrough:
    def preprocess(self, payload):  # noqa: D401 - Gradio's hook
        return payload


# ---- inputs: the raw value reaches the handler, which checks it
@_signature_once
class Number(_PassThrough, gr.Number):
    pass


@_signature_once
class Slider(_PassThrough, gr.Slider):
    pass


@_signature_once
class Dropdown(_PassThrough, gr.Dropdown):
    pass


@_signature_once
class Radio(_PassThrough, gr.Radio):
    pass


@_signature_once
class CheckboxGroup(_PassThrough, gr.CheckboxGroup):
    pass


# ---- everything else, as Gradio's
@_signature_once
class Markdown(gr.Markdown):
    pass


@_signature_once
class Textbox(gr.Textbox):
    pass


@_signature_once
class Button(gr.Button):
    pass


@_signature_once
class Plot(gr.Plot):
    pass


@_signature_once
class File(gr.File):
    pass


@_signature_once
class Checkbox(gr.Checkbox):
    pass


@_signature_once
class State(gr.State):
    pass


@_signature_once
class Timer(gr.Timer):
    pass


@_signature_once
class Row(gr.Row):
    pass


@_signature_once
class Column(gr.Column):
    pass


@_signature_once
class Tabs(gr.Tabs):
    pass


@_signature_once
class Tab(gr.Tab):
    pass


@_signature_once
class Accordion(gr.Accordion):
    pass
