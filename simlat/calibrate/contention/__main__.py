"""``python -m simlat.calibrate.contention``: see :mod:`simlat.calibrate.contention.command`."""

import sys

from simlat.calibrate.contention.command import main

sys.exit(main())
