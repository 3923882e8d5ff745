import Testing
@testable import ClawAssistant
import ClawReactor

/// `n` bytes of text, so each turn costs `(n + 3) / 4 + 4` tokens.
private func text(_ n: Int, _ c: Character = "x") -> String { String(repeating: c, count: n) }

private func exchange(_ i: Int, bytes: Int = 40) -> Exchange {
    Exchange(time: Int64(i), user: "\(i)" + text(bytes - "\(i)".count), assistant: text(bytes, "y"))
}

/// The turns for the exchanges `history[i]` in order, then the new message.
private func expected(_ history: [Exchange], _ indices: Range<Int>, _ newMessage: String) -> [ChatTurn] {
    indices.flatMap { [ChatTurn(.user, history[$0].user), ChatTurn(.assistant, history[$0].assistant)] } + [ChatTurn(.user, newMessage)]
}

@Suite struct HistoryWindowTests {
    @Test func tokensAreBytesOverFourRoundedUp() {
        #expect(HistoryWindow.estimateTokens("") == 0)
        #expect(HistoryWindow.estimateTokens("abcd") == 1)
        #expect(HistoryWindow.estimateTokens("abcde") == 2)
        #expect(HistoryWindow.estimateTokens("é") == 1)
        #expect(HistoryWindow.estimateTokens("🙂🙂") == 2)
        #expect(HistoryWindow.turnTokens("abcde") == 2 + HistoryWindow.turnOverheadTokens)
    }

    @Test func theBudgetCutsTheOldestExchangesFirst() {
        let history = (0..<5).map { exchange($0) }
        let perExchange = 2 * (10 + 4)       // two turns of 40 bytes
        let newMessage = text(8)              // 2 + 4 tokens
        let fitsTwo = 6 + 2 * perExchange
        #expect(HistoryWindow.turns(history: history, newMessage: newMessage, budgetTokens: fitsTwo) == expected(history, 3..<5, newMessage))
        #expect(HistoryWindow.turns(history: history, newMessage: newMessage, budgetTokens: fitsTwo - 1) == expected(history, 4..<5, newMessage))
        #expect(HistoryWindow.turns(history: history, newMessage: newMessage, budgetTokens: 10_000) == expected(history, 0..<5, newMessage))
        #expect(HistoryWindow.turns(history: history, newMessage: newMessage, budgetTokens: fitsTwo + 100, systemTokens: 100)
                == expected(history, 3..<5, newMessage), "the system prompt's tokens come off the budget")
    }

    @Test func aNewMessageOverTheBudgetGoesAlone() {
        let history = (0..<3).map { exchange($0) }
        #expect(HistoryWindow.turns(history: history, newMessage: text(400), budgetTokens: 50) == [ChatTurn(.user, text(400))])
        #expect(HistoryWindow.turns(history: [], newMessage: "hi", budgetTokens: 1_000) == [ChatTurn(.user, "hi")])
        #expect(HistoryWindow.turns(history: history, newMessage: "hi", budgetTokens: 0, systemTokens: 10) == [ChatTurn(.user, "hi")])
    }

    @Test func exchangesWithAnEmptySideAreSkipped() {
        let history = [
            exchange(0),
            Exchange(time: 1, user: "", assistant: "orphan answer"),
            Exchange(time: 2, user: "question", assistant: " \n\t"),
            exchange(3),
        ]
        let turns = HistoryWindow.turns(history: history, newMessage: "next", budgetTokens: 10_000)
        #expect(turns == [
            ChatTurn(.user, history[0].user), ChatTurn(.assistant, history[0].assistant),
            ChatTurn(.user, history[3].user), ChatTurn(.assistant, history[3].assistant),
            ChatTurn(.user, "next"),
        ])
    }

    @Test func aNewerExchangeThatDoesNotFitStopsOlderOnes() {
        let history = [exchange(0, bytes: 4), exchange(1, bytes: 4_000), exchange(2, bytes: 4)]
        let turns = HistoryWindow.turns(history: history, newMessage: "q", budgetTokens: 100)
        #expect(turns == expected(history, 2..<3, "q"), "no gap: exchange 0 is not sent without exchange 1")
    }

    /// Over many random histories and budgets: always a valid conversation for either API, and
    /// the longest newest run of sendable exchanges within the budget.
    @Test func randomHistoriesAlwaysGiveAValidWindow() {
        var rng = SplitMix64(seed: 0xC1A7_C4A7)
        for round in 0..<2_000 {
            let history: [Exchange] = (0..<Int.random(in: 0..<30, using: &rng)).map { i in
                func side() -> String {
                    switch Int.random(in: 0..<10, using: &rng) {
                    case 0: return ""
                    case 1: return "  "
                    default: return text(Int.random(in: 1..<400, using: &rng), "é")
                    }
                }
                return Exchange(time: Int64(i), user: side(), assistant: side())
            }
            let newMessage = text(Int.random(in: 1..<300, using: &rng))
            let budget = Int.random(in: 0..<3_000, using: &rng)
            let system = Int.random(in: 0..<500, using: &rng)
            let turns = HistoryWindow.turns(history: history, newMessage: newMessage, budgetTokens: budget, systemTokens: system)

            #expect(turns.last == ChatTurn(.user, newMessage), "round \(round)")
            #expect(turns.count % 2 == 1, "round \(round)")
            for (i, turn) in turns.enumerated() {
                #expect(turn.role == (i % 2 == 0 ? .user : .assistant), "round \(round): turn \(i) breaks the alternation")
                let blank = turn.content.allSatisfy(\.isWhitespace)
                #expect(!blank, "round \(round): blank turn \(i)")
            }
            let sendable = history.filter { !$0.user.allSatisfy(\.isWhitespace) && !$0.assistant.allSatisfy(\.isWhitespace) }
            let pairs = stride(from: 0, to: turns.count - 1, by: 2).map {
                Exchange(time: 0, user: turns[$0].content, assistant: turns[$0 + 1].content)
            }
            let tail = sendable.suffix(pairs.count).map { Exchange(time: 0, user: $0.user, assistant: $0.assistant) }
            #expect(pairs == tail, "round \(round): not the newest exchanges in order")
            let cost = pairs.reduce(HistoryWindow.turnTokens(newMessage)) {
                $0 + HistoryWindow.turnTokens($1.user) + HistoryWindow.turnTokens($1.assistant)
            }
            if !pairs.isEmpty { #expect(cost <= budget - system, "round \(round): over the budget") }
            if pairs.count < sendable.count {
                let next = sendable[sendable.count - pairs.count - 1]
                let nextCost = HistoryWindow.turnTokens(next.user) + HistoryWindow.turnTokens(next.assistant)
                #expect(cost + nextCost > budget - system, "round \(round): the next older exchange would have fit")
            }
        }
    }
}
