from hwml.cli import main

raise SystemExit(main())
