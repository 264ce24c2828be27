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
# Gradio rebuilds a pandas summary of the last 10,000 events after every event, for a monitoring
# page this app does not serve (enable_monitoring=False): 1.4 ms of the server's interpreter per
# event with 100 events recorded, 8 ms with 10,000 (stop 29). Rebuild it (almost) never.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(10**9))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from ui.page import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
