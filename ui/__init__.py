"""The Gradio app of mdlm-viz (`python app.py` launches it).

- `settings`: the one table of limits, decode settings, prompt checks (every input answered).
- `models`: which checkpoints are served and how they are loaded (server side only).
- `session`: the typed state of a visitor's session, and the app context handlers share.
- `decoding`: seeded step-by-step decodes, interleaved across models.
- `finder`: "Find a revealing shift".
- `tabs/`: one module per part of the page (layout, module-level handlers, wiring).
- `page`: the page put together, and the launcher.
"""
