import sys

from disbench.cli import main

sys.exit(main())
