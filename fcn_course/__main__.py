"""``python -m fcn_course``: the course's command line."""

from __future__ import annotations

import sys

from fcn_course.cli import main

sys.exit(main())
