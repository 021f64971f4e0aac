from humanseg.cli import main

raise SystemExit(main())
