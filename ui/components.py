"""Input components that hand the visitor's raw value to the app instead of checking it.

Gradio's own checks (a slider's range, a number's type, a dropdown's choices) answer an API
client with a generic error and log a traceback. These subclasses override only the public
`preprocess` hook to pass the value through; every handler then checks it with `settings`
(`as_number`, `as_choice`), so the page and the API get the same message: what to change.
"""

from __future__ import annotations

import gradio as gr


class _PassThrough:
    def preprocess(self, payload):  # noqa: D401 - Gradio's hook
        return payload


class Number(_PassThrough, gr.Number):
    pass


class Slider(_PassThrough, gr.Slider):
    pass


class Dropdown(_PassThrough, gr.Dropdown):
    pass


class Radio(_PassThrough, gr.Radio):
    pass


class CheckboxGroup(_PassThrough, gr.CheckboxGroup):
    pass
