"""Docker HEALTHCHECK for a Zabota service image: exit 0 when GET /health/live answers 200.

The image sets ZABOTA_SERVICE and <SERVICE>_PORT; a port overridden at run time is picked up too.
Standard library only, so it needs nothing beyond the image's Python.
"""

import os
import sys
import urllib.request

service = os.environ.get("ZABOTA_SERVICE", "")
port = os.environ.get(f"{service.upper()}_PORT") or os.environ.get("PORT") or "8000"
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=3) as resp:
        sys.exit(0 if resp.status == 200 else 1)
except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy"
    print(f"{service}: /health/live on port {port}: {exc}", file=sys.stderr)
    sys.exit(1)
