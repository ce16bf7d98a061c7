from iceledger.cli import main

main()
