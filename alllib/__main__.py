import sys

from alllib.cli import main

sys.exit(main())
