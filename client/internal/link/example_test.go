package link_test

import (
	"fmt"
	"time"

	"github.com/postern/postern/client/internal/link"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

func Example() {
	now := time.Now()
	person, _ := identity.GenerateIdentity()

	// The existing device makes a code for a fresh link mailbox.
	code, err := link.NewCode("wss://relay.example.org", protocol.NewMailboxID(), now)
	if err != nil {
		panic(err)
	}
	text := code.Text() // shown as text and with link.WriteQR

	// The new device reads it and asks to be enrolled. (Here its keys come
	// from identity.NewDevice for brevity; a real new device has its own.)
	newSide, err := link.Parse(text, now)
	if err != nil {
		panic(err)
	}
	dev, _ := identity.NewDevice(person)
	req := &link.Request{Signing: dev.Certificate().Signing, KEM: dev.Certificate().KEM, Name: "OFFICE-PC",
		ReplyMailbox: protocol.NewMailboxID(), ReplyCapability: protocol.NewCapabilityToken()}
	pending, sealedReq, err := newSide.SealRequest(req)
	if err != nil {
		panic(err)
	}

	// The existing device opens the request and answers it.
	got, err := code.OpenRequest(sealedReq)
	if err != nil {
		panic(err)
	}
	fmt.Println("request from", got.Name)
	sealedResp, err := code.SealResponse(got, &link.Response{Identity: person, Certificate: dev.Certificate(),
		PersonName: "Ana", DeviceList: []byte("signed device list")})
	if err != nil {
		panic(err)
	}

	// The new device opens the response to its own request.
	resp, err := pending.OpenResponse(sealedResp)
	if err != nil {
		panic(err)
	}
	fmt.Println("enrolled as a device of", resp.PersonName)
	// Output:
	// request from OFFICE-PC
	// enrolled as a device of Ana
}
