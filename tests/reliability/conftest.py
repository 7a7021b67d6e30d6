"""The fault-injection tests run the CLI as the loop tests do: their helpers live in tests/rl/loop_fixtures.py."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rl"))
