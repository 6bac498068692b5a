import sys
from taskgraph.cli.main import main
sys.exit(main())
