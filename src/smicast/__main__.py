import sys

from smicast.cli import main

sys.exit(main())
