print("clawchatd")
