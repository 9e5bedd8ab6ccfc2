-- Writes a copy of examples/catalog.json with one more event whose single
-- seated set holds `seats` tickets, for specs that walk very long streams.
--
--   local big = require "spec.helpers.big_catalog"
--   local path = big.write(100000)   -- a temporary file; big.EVENT, big.SET
--   ...; os.remove(path)
--
-- The new event is spliced into the text of the catalog's "events" list
-- (its last key), so the rest of the file stays byte for byte as it is.

local cjson = require "cjson"

local _M = {}

_M.EVENT = "5f00000000000000000000e1"
_M.SET = "5f00000000000000000000e2"
_M.SECTOR = "5f00000000000000000000e3"
_M.SEATS_PER_ROW = 50

function _M.write(seats, source)
    local f = assert(io.open(source or "examples/catalog.json", "rb"))
    local text = f:read("*a")
    f:close()
    local catalog = cjson.decode(text)
    local base = assert(catalog.events[1])

    local tickets = {}
    for i = 1, seats do
        tickets[i] = {
            id = ("5f%022x"):format(i),
            serial = "BIG",
            number = i,
            seat = { sector = _M.SECTOR, row = tostring(math.floor((i - 1) / _M.SEATS_PER_ROW) + 1),
                     number = tostring((i - 1) % _M.SEATS_PER_ROW + 1) },
        }
    end
    local event = cjson.encode{
        id = _M.EVENT, name = "Big hall", status = "PUBLIC", org = base.org, venue = base.venue,
        lifetime = base.lifetime, category = base.category, deal = base.deal,
        sets = { { id = _M.SET, name = "Hall", pos = 0, sector = _M.SECTOR, with_seats = true,
                   rules = { { id = "5f00000000000000000000e4", simple = { price = 100000 } } },
                   tickets = tickets } },
    }
    local head = assert(text:match('^(.*"events"%s*:%s*%[.*%})%s*%]%s*}%s*$'),
                        "the catalog's last key must be a non-empty \"events\" list")
    local path = os.tmpname()
    f = assert(io.open(path, "wb"))
    f:write(head, ",\n", event, "\n]\n}\n")
    f:close()
    return path
end

return _M
