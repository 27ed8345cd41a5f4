package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/postern/postern/client"
)

// Two people on one relay become contacts and exchange a message.
func Example() {
	ctx := context.Background()
	relay := "wss://relay.example.org"

	alice, err := client.Init(ctx, "/home/alice/.postern", []byte("alice's passphrase"), relay, "alice", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer alice.Close()
	bob, err := client.Init(ctx, "/home/bob/.postern", []byte("bob's passphrase"), relay, "bob", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()

	// Alice invites; Bob accepts the line she gives him.
	code, err := alice.Invite(ctx)
	if err != nil {
		log.Fatal(err)
	}
	contact, err := bob.Accept(ctx, code, "alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("compare with alice:", contact.SafetyNumber)

	// Alice learns about Bob from his introduction.
	if _, err := alice.Sync(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := alice.Send(ctx, "bob", "hello Bob"); err != nil {
		log.Fatal(err)
	}
	msgs, err := bob.Sync(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range msgs {
		fmt.Printf("[%s] %s: %s\n", m.ID, m.From, m.Text)
	}
}

// A long-running listener on a home that was initialised before.
func ExampleClient_Receive() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "/home/bob/.postern", []byte("bob's passphrase"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for {
		m, err := c.Receive(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("New secure message from", m.From)
	}
}

// Reading stored messages without the relay: Open touches no network and
// receives nothing.
func ExampleOpen() {
	c, err := client.Open("/home/bob/.postern", []byte("bob's passphrase"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	msgs, err := c.Inbox()
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range msgs {
		fmt.Printf("[%s] %s: %s\n", m.ID, m.From, m.Text)
	}
}
