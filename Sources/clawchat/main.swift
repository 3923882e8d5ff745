print("clawchat")
