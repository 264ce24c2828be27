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

from gradio.events import Dependency

class Number(_PassThrough, gr.Number):
    pass
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class Slider(_PassThrough, gr.Slider):
    pass
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class Dropdown(_PassThrough, gr.Dropdown):
    pass
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class Radio(_PassThrough, gr.Radio):
    pass
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class CheckboxGroup(_PassThrough, gr.CheckboxGroup):
    pass
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component