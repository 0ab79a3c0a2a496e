from kit.mmssr.distilled.train import main

raise SystemExit(main())
