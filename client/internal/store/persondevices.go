package store

import (
	"bytes"
	"fmt"
)

// BucketPersonDevices (schema 9) is the person -> devices index: one
// entry per device record, keyed Kidx(person ID) || device record ID,
// with an empty value (sealed like every value). A person's devices are
// the entries under the prefix of its index, in device record ID order,
// found with one cursor seek: DevicesOf then opens only that person's
// records instead of every device record of the store (each holds a
// certificate of several kilobytes). The prefix is a keyed index, so
// the keys show which device records belong to one person, never who.
var BucketPersonDevices = []byte("person-devices")

func init() { allBuckets = append(allBuckets, BucketPersonDevices) }

// personDevicesPrefix is the index prefix of person's devices, of the
// fixed size of an Index.
func (t *Tx) personDevicesPrefix(person []byte) []byte {
	return t.Index(BucketPersonDevices, person)
}

// personDeviceKey is the index key of device record id of person.
func (t *Tx) personDeviceKey(person, id []byte) []byte {
	return append(t.personDevicesPrefix(person), id...)
}

// putPersonDevice adds d's index entry. The value is empty: the key is
// the whole entry, and sealing the empty value keeps the rule that every
// value of the store is sealed and bound to its key.
func (t *Tx) putPersonDevice(d *Device) error {
	return t.PutRaw(BucketPersonDevices, t.personDeviceKey(d.Person, d.ID), nil)
}

// deletePersonDevice removes d's index entry.
func (t *Tx) deletePersonDevice(d *Device) error {
	return t.Delete(BucketPersonDevices, t.personDeviceKey(d.Person, d.ID))
}

// rebuildPersonDevices makes the person -> devices index anew from the
// device records: the migration to schema 9 (migrate8.go).
func (t *Tx) rebuildPersonDevices() error {
	if t.bt.Bucket(BucketPersonDevices) != nil {
		if err := t.bt.DeleteBucket(BucketPersonDevices); err != nil {
			return err
		}
	}
	if _, err := t.bt.CreateBucket(BucketPersonDevices); err != nil {
		return err
	}
	var ds []*Device
	err := t.Each(BucketDevices, func(k, v []byte) error {
		d := new(Device)
		if err := Unmarshal(v, d); err != nil {
			return err
		}
		if !bytes.Equal(d.ID, k) {
			return fmt.Errorf("store: a device record under another ID: %w", ErrCorrupt)
		}
		ds = append(ds, d)
		return nil
	})
	if err != nil {
		return err
	}
	// Written after the walk: a bucket is not changed under its cursor.
	for _, d := range ds {
		if err := t.putPersonDevice(d); err != nil {
			return err
		}
	}
	return nil
}
