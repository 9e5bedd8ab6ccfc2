-- luacheck configuration for lua/, spec/, examples/ and tools/.
std = "max"
max_line_length = 110
codes = true

files["spec"] = { std = "+busted" }
