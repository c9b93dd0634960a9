"""`uvicorn` with RLIMIT_NOFILE raised to its hard limit (10,000 idle connections need it).

Usage: python uvicorn_serve.py APP [uvicorn options...]; the options are uvicorn's own.
"""

import resource
import sys

import uvicorn.main

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
sys.exit(uvicorn.main.main())
