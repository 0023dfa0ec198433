import sys

from sasnet_core.cli import main

sys.exit(main())
