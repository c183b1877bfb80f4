-- Checkout load for wrk, the C load generator `orderbench wrk` drives (bench/README.md).
--
--   wrk -t1 -c64 -d10s --latency -s bench/wrk/checkout.lua URL -- PREFIX SKUS SEED CUSTOMERS
--
-- Every request is POST /v1/orders with the body orderbench sends:
--   {"customer":"bench-T-K","items":[{"sku":"PREFIX-NNNNN","quantity":1}]}
-- NNNNN is drawn uniformly from 0..SKUS-1 (SKUS=1 is the hot workload: one SKU), the SKU
-- names orderbench restocks; K cycles over CUSTOMERS names per thread T.
-- Answers are counted by status in response(); done() prints one machine-readable line
--   wrk-result {"duration_us":…,"requests":…,"sent":…,"status":{"201":…,"409":…},"errors":{…},"latency_us":{…}}
-- which orderbench parses (wrk's own summary is printed above it, for people).
--
-- With CHECKOUT_STATUSES=0 in the environment the script defines no response(): wrk then hands
-- no headers or body to Lua, which costs far less per request (it matters most against the
-- ceiling), and the counts are wrk's own split: "2xx" (answers below 400) and "non-2xx".

local threads = {}

-- setup runs in the main Lua state, once per thread, before the thread starts.
function setup(thread)
	table.insert(threads, thread)
	thread:set("thread_id", #threads)
end

-- Per thread (each has its own Lua state). Globals are what done() reads with thread:get.
local sku_names, customers = {}, 64
local headers = { ["Content-Type"] = "application/json" }
sent = 0    -- requests built: answered, failed, or in flight when wrk stops
counts = {} -- status -> answers

function init(args)
	local prefix = args[1] or "sku"
	local skus = tonumber(args[2] or "1")
	local seed = tonumber(args[3] or "1")
	customers = tonumber(args[4] or "64")
	if not skus or skus < 1 or not seed or not customers or customers < 1 then
		error("usage: -- PREFIX SKUS SEED CUSTOMERS")
	end
	for i = 0, skus - 1 do
		sku_names[i + 1] = string.format("%s-%05d", prefix, i)
	end
	math.randomseed(seed * 1000 + thread_id)
end

function request()
	sent = sent + 1
	local sku = sku_names[math.random(#sku_names)]
	local body = '{"customer":"bench-' .. thread_id .. "-" .. (sent % customers) ..
		'","items":[{"sku":"' .. sku .. '","quantity":1}]}'
	return wrk.format("POST", "/v1/orders", headers, body)
end

-- wrk decides whether to call response() from the script as loaded, before init(args): an
-- environment variable, not an argument, chooses.
if os.getenv("CHECKOUT_STATUSES") ~= "0" then
	function response(status)
		counts[status] = (counts[status] or 0) + 1
	end
end

function done(summary, latency)
	local total, sent_all = {}, 0
	for _, t in ipairs(threads) do
		sent_all = sent_all + t:get("sent")
		for status, count in pairs(t:get("counts")) do
			total[status] = (total[status] or 0) + count
		end
	end
	local e = summary.errors
	local statuses = {}
	if response then
		for status, count in pairs(total) do
			statuses[#statuses + 1] = string.format('"%d":%d', status, count)
		end
		table.sort(statuses)
	else
		statuses = { string.format('"2xx":%d', summary.requests - e.status), string.format('"non-2xx":%d', e.status) }
	end
	io.write(string.format('wrk-result {"duration_us":%d,"requests":%d,"sent":%d,"bytes":%d,"status":{%s},' ..
		'"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
		'"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
		summary.duration, summary.requests, sent_all, summary.bytes, table.concat(statuses, ","),
		e.connect, e.read, e.write, e.status, e.timeout,
		latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
		latency.max, latency.mean))
end
