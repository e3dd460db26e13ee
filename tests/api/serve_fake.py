"""Run the service with the fake core in its own process (for crash tests): args as JSON.

    python serve_fake.py '{"port": 8123, "delay_s": 30, "settings": {...}, "api": {...}}'
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.api

import uvicorn  # noqa: E402

from agrostress.settings import Settings  # noqa: E402
from api.app import create_app  # noqa: E402
from api.settings import ApiSettings  # noqa: E402
from tests.api.api_fakes import FakeCore  # noqa: E402


def main() -> None:
    args = json.loads(sys.argv[1])
    settings = Settings(_env_file=None, **args["settings"])
    api = ApiSettings(_env_file=None, **args["api"])
    app = create_app(settings, api, core=FakeCore(delay_s=float(args.get("delay_s", 0))).core())
    uvicorn.run(app, host="127.0.0.1", port=int(args["port"]), log_level="warning")


if __name__ == "__main__":
    main()
