import sys

from vidnets.cli import main

sys.exit(main())
