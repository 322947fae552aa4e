//go:build !unix

package web

import (
	"net"
	"time"
)

// BatchListener returns ln: reads are batched only on Unix systems.
func BatchListener(ln net.Listener) net.Listener { return ln }

type batchConn struct{ net.Conn }

func (c *batchConn) batch(time.Duration) bool { return false }

func (c *batchConn) lingerOnClose() {}

func batchConnOf(net.Conn) *batchConn { return nil }
