-- wrk script: one checkout per request, each with its own Idempotency-Key,
-- spread over products 1..200 (their stock is raised before the run).
local counter = 0
local token = os.getenv("BENCH_TOKEN")
local run = os.getenv("BENCH_RUN") or "run"

request = function()
  counter = counter + 1
  local id = (counter % 200) + 1
  local body = '{"payment_token":"tok_visa","items":[{"product_id":' .. id .. ',"quantity":1}]}'
  return wrk.format("POST", "/v1/checkout", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = run .. "-" .. counter,
  }, body)
end
