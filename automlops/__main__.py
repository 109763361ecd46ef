from automlops.cli import main

raise SystemExit(main())
