from prunelab.cli import main

main()
