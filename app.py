"""mdlm-viz: watch masked diffusion LMs decode, side by side, and shift a token to see who recovers.

    python app.py                                   # assets/base, assets/ce, assets/ctc on 127.0.0.1:7860
    python app.py --models ce=runs/ce/best ctc=runs/ctc/best --port 7861
    MDLM_VIZ_MODELS="base=assets/base,ce=assets/ce" python app.py

Checkpoints are chosen on the server only (flags or MDLM_VIZ_MODELS): the page lists their names,
and nothing a visitor types becomes a path. Remote code is never loaded. The page lives in `ui/`.
"""

import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry: nothing leaves the machine
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from ui.page import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
