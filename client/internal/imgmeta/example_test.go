package imgmeta_test

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"log"

	"github.com/postern/postern/client/internal/imgmeta"
)

func ExampleStrip() {
	var photo bytes.Buffer
	png.Encode(&photo, image.NewGray(image.Rect(0, 0, 4, 4)))

	mt := imgmeta.Sniff(photo.Bytes()) // sniff the content, not the file name
	var clean bytes.Buffer             // a temporary file in a client
	stripped, err := imgmeta.Strip(mt, &photo, &clean)
	if err != nil {
		log.Fatal(err) // discard the temporary file
	}
	fmt.Println(mt, stripped)
	// Output: image/png true
}
