import Testing

@testable import TunnelProtocol

/// One stream's halves, windows and credit batching, transition by transition.
@Suite struct StreamStateMachineTests {
    // MARK: Starting states

    @Test func aStreamThisSideOpenedStartsIdleBothWaysWithAFullWindow() {
        let stream = StreamStateMachine.opened(window: 100)
        #expect(stream.sending == .idle)
        #expect(stream.receiving == .idle)
        #expect(stream.sendWindow == 100)
        #expect(stream.receivedOutstanding == 0)
        #expect(stream.consumedUncredited == 0)
        #expect(!stream.isClosed)
    }

    @Test func anAcceptedStreamHasItsReceivingHalfOpenOrClosedByTheHead() {
        let withBody = StreamStateMachine.accepted(window: 100, endStream: false)
        #expect(withBody.sending == .idle)
        #expect(withBody.receiving == .open)
        let withoutBody = StreamStateMachine.accepted(window: 100, endStream: true)
        #expect(withoutBody.sending == .idle)
        #expect(withoutBody.receiving == .closed)
        #expect(!withoutBody.isClosed)
    }

    // MARK: Sending

    @Test func aHeadOpensTheSendingHalfAndASecondHeadIsInvalid() {
        var stream = StreamStateMachine.opened(window: 100)
        #expect(stream.sendHead(endStream: false) == .send(closesStream: false))
        #expect(stream.sending == .open)
        #expect(stream.sendHead(endStream: false) == .invalid)
        #expect(stream.sending == .open)
    }

    @Test func aHeadWithEndStreamClosesTheSendingHalf() {
        var stream = StreamStateMachine.opened(window: 100)
        #expect(stream.sendHead(endStream: true) == .send(closesStream: false))
        #expect(stream.sending == .closed)
    }

    @Test func bodyBeforeTheHeadOrAfterTheEndIsInvalid() {
        var stream = StreamStateMachine.opened(window: 100)
        #expect(stream.sendData(count: 1, endStream: false) == .invalid)
        #expect(stream.sendEnd() == .invalid)
        #expect(stream.sendWindow == 100)
        _ = stream.sendHead(endStream: false)
        #expect(stream.sendEnd() == .send(closesStream: false))
        #expect(stream.sendData(count: 1, endStream: false) == .invalid)
        #expect(stream.sendEnd() == .invalid)
        #expect(stream.sendHead(endStream: false) == .invalid)
    }

    @Test func sendingDataSpendsTheWindowAndMoreThanTheWindowIsInvalid() {
        var stream = StreamStateMachine.opened(window: 100)
        _ = stream.sendHead(endStream: false)
        #expect(stream.sendData(count: 60, endStream: false) == .send(closesStream: false))
        #expect(stream.sendWindow == 40)
        #expect(stream.sendData(count: 41, endStream: false) == .invalid)
        #expect(stream.sendWindow == 40)
        #expect(stream.sendData(count: 40, endStream: false) == .send(closesStream: false))
        #expect(stream.sendWindow == 0)
        #expect(stream.sendData(count: 0, endStream: true) == .send(closesStream: false))
        #expect(stream.sending == .closed)
    }

    @Test func dataWithEndStreamClosesTheSendingHalf() {
        var stream = StreamStateMachine.opened(window: 100)
        _ = stream.sendHead(endStream: false)
        #expect(stream.sendData(count: 10, endStream: true) == .send(closesStream: false))
        #expect(stream.sending == .closed)
        #expect(stream.sendData(count: 1, endStream: false) == .invalid)
    }

    @Test func theLastFrameOfBothHalvesClosesTheStream() {
        // The acceptor's answer ends the stream when the request was complete.
        var acceptor = StreamStateMachine.accepted(window: 100, endStream: true)
        #expect(acceptor.sendHead(endStream: true) == .send(closesStream: true))
        #expect(acceptor.isClosed)

        var viaData = StreamStateMachine.accepted(window: 100, endStream: true)
        _ = viaData.sendHead(endStream: false)
        #expect(viaData.sendData(count: 5, endStream: true) == .send(closesStream: true))

        var viaEnd = StreamStateMachine.accepted(window: 100, endStream: true)
        _ = viaEnd.sendHead(endStream: false)
        #expect(viaEnd.sendEnd() == .send(closesStream: true))
    }

    // MARK: Receiving

    @Test func aReceivedHeadOpensOrClosesTheReceivingHalfAndASecondIsAStreamError() {
        var stream = StreamStateMachine.opened(window: 100)
        #expect(stream.receiveHead(endStream: false) == .deliver(closesStream: false))
        #expect(stream.receiving == .open)
        #expect(stream.receiveHead(endStream: false) == .streamError("a second head on one stream"))

        var empty = StreamStateMachine.opened(window: 100)
        #expect(empty.receiveHead(endStream: true) == .deliver(closesStream: false))
        #expect(empty.receiving == .closed)
    }

    @Test func bodyBeforeTheHeadIsAStreamError() {
        var stream = StreamStateMachine.opened(window: 100)
        #expect(stream.receiveData(count: 1, endStream: false, window: 100) == .streamError("body before head"))
        #expect(stream.receiveEnd() == .streamError("end before head"))
        #expect(stream.receivedOutstanding == 0)
    }

    @Test func bodyAfterTheEndIsAStreamError() {
        var stream = StreamStateMachine.accepted(window: 100, endStream: false)
        #expect(stream.receiveEnd() == .deliver(closesStream: false))
        #expect(stream.receiveData(count: 1, endStream: false, window: 100) == .streamError("body after the end"))
        #expect(stream.receiveEnd() == .streamError("a second end"))

        var flagged = StreamStateMachine.accepted(window: 100, endStream: false)
        #expect(flagged.receiveData(count: 3, endStream: true, window: 100) == .deliver(closesStream: false))
        #expect(flagged.receiving == .closed)
        #expect(flagged.receiveData(count: 1, endStream: false, window: 100) == .streamError("body after the end"))
    }

    @Test func receivingMoreThanTheWindowIsAFlowControlViolation() {
        var stream = StreamStateMachine.accepted(window: 100, endStream: false)
        #expect(stream.receiveData(count: 70, endStream: false, window: 100) == .deliver(closesStream: false))
        #expect(stream.receiveData(count: 30, endStream: false, window: 100) == .deliver(closesStream: false))
        #expect(stream.receivedOutstanding == 100)
        #expect(stream.receiveData(count: 1, endStream: false, window: 100) == .flowControlViolation)
    }

    @Test func theLastReceivedFrameOfBothHalvesClosesTheStream() {
        var byHead = StreamStateMachine.opened(window: 100)
        _ = byHead.sendHead(endStream: true)
        #expect(byHead.receiveHead(endStream: true) == .deliver(closesStream: true))
        #expect(byHead.isClosed)

        var byData = StreamStateMachine.opened(window: 100)
        _ = byData.sendHead(endStream: true)
        _ = byData.receiveHead(endStream: false)
        #expect(byData.receiveData(count: 10, endStream: true, window: 100) == .deliver(closesStream: true))

        var byEnd = StreamStateMachine.opened(window: 100)
        _ = byEnd.sendHead(endStream: true)
        _ = byEnd.receiveHead(endStream: false)
        #expect(byEnd.receiveEnd() == .deliver(closesStream: true))
    }

    // MARK: Credit

    @Test func creditFromThePeerGrowsTheWindowUntilTheSendingHalfCloses() {
        var stream = StreamStateMachine.opened(window: 100)
        // Before the head is sent the credit is kept: the body follows.
        #expect(stream.receiveCredit(10) == true)
        #expect(stream.sendWindow == 110)
        _ = stream.sendHead(endStream: false)
        _ = stream.sendData(count: 110, endStream: false)
        #expect(stream.receiveCredit(50) == true)
        #expect(stream.sendWindow == 50)
        _ = stream.sendEnd()
        #expect(stream.receiveCredit(50) == false)
        #expect(stream.sendWindow == 50)
    }

    @Test func creditNeverGrowsTheWindowPastInt32Max() {
        var stream = StreamStateMachine.opened(window: 100)
        #expect(stream.receiveCredit(Int(UInt32.max)) == true)
        #expect(stream.receiveCredit(Int(UInt32.max)) == true)
        #expect(stream.sendWindow == Int(Int32.max))
    }

    @Test func consumedBytesAreCreditedBackInBatchesOfTheThreshold() {
        var stream = StreamStateMachine.accepted(window: 100, endStream: false)
        _ = stream.receiveData(count: 100, endStream: false, window: 100)
        #expect(stream.consume(10, threshold: 25) == 0)
        #expect(stream.consume(14, threshold: 25) == 0)
        #expect(stream.consumedUncredited == 24)
        #expect(stream.consume(1, threshold: 25) == 25)
        #expect(stream.consumedUncredited == 0)
        #expect(stream.receivedOutstanding == 75)
        // A big consumption is credited whole.
        #expect(stream.consume(75, threshold: 25) == 75)
        #expect(stream.receivedOutstanding == 0)
        // The credited room can be filled again without a violation.
        #expect(stream.receiveData(count: 100, endStream: false, window: 100) == .deliver(closesStream: false))
    }

    @Test func noCreditGoesBackOnceThePeersHalfIsClosed() {
        var stream = StreamStateMachine.accepted(window: 100, endStream: false)
        _ = stream.receiveData(count: 80, endStream: true, window: 100)
        #expect(stream.consume(80, threshold: 25) == 0)
        #expect(stream.consumedUncredited == 0)

        var beforeHead = StreamStateMachine.opened(window: 100)
        #expect(beforeHead.consume(50, threshold: 25) == 0)
    }
}

extension StreamStateMachineTests {
    @Test func aWindowIsWidenedOnlyWhileTheBodyMayStillCome() {
        var stream = StreamStateMachine.accepted(window: 100, endStream: false)
        #expect(stream.widenReceiveWindow(to: 400, initial: 100) == 300)
        #expect(stream.widenReceiveWindow(to: 400, initial: 100) == 0)
        #expect(stream.receiveData(count: 400, endStream: true, window: 100) == .deliver(closesStream: false))
        #expect(stream.widenReceiveWindow(to: 800, initial: 100) == 0)
        var headOnly = StreamStateMachine.accepted(window: 100, endStream: true)
        #expect(headOnly.widenReceiveWindow(to: 400, initial: 100) == 0)
    }
}
