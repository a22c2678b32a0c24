from imgclf.cli import main

raise SystemExit(main())
