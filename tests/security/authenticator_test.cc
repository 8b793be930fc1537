// Authenticator: the tokens file's format and errors, and who a request is.
#include "server/service/authenticator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace kiln::server {
namespace {

using ::testing::HasSubstr;

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ =
        (std::filesystem::temp_directory_path() / absl::StrCat("kiln-tokens-", getpid())).string();
  }
  void TearDown() override { std::filesystem::remove(path_); }
  void Write(const std::string& text) { std::ofstream(path_) << text; }

  std::string path_;
};

TEST_F(AuthenticatorTest, DigestIsSha256Hex) {
  // sha256("abc"), FIPS 180-2's example.
  EXPECT_EQ(TokenDigest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(*TokenFileLine("t-1", "abc"), absl::StrCat("t-1:", TokenDigest("abc")));
  EXPECT_FALSE(TokenFileLine("", "abc").ok());
  EXPECT_FALSE(TokenFileLine("a:b", "abc").ok());
  EXPECT_FALSE(TokenFileLine("a", "").ok());
}

TEST_F(AuthenticatorTest, TokensNameTenants) {
  Write(absl::StrCat("# comment\n\n", *TokenFileLine("alice", "a-secret"), "\n",
                     *TokenFileLine("bob", "b-secret"), "\n"));
  Authenticator auth(path_, false);
  ASSERT_TRUE(auth.Reload().ok());
  EXPECT_TRUE(auth.required());
  EXPECT_EQ(auth.tenants(), 2);
  EXPECT_EQ(auth.Authenticate("Bearer a-secret", "")->id, "alice");
  EXPECT_EQ(auth.Authenticate("Bearer b-secret", "cn")->id, "bob");  // the token decides
  for (auto header :
       {std::optional<absl::string_view>(), std::optional<absl::string_view>("a-secret"),
        std::optional<absl::string_view>("Bearer nope"),
        std::optional<absl::string_view>("Basic a-secret")}) {
    EXPECT_EQ(auth.Authenticate(header, "").status().code(), absl::StatusCode::kUnauthenticated);
  }
}

TEST_F(AuthenticatorTest, ABrokenFileKeepsTheTokensInUse) {
  Write(absl::StrCat(*TokenFileLine("alice", "a-secret"), "\n"));
  Authenticator auth(path_, false);
  ASSERT_TRUE(auth.Reload().ok());
  Write(absl::StrCat(*TokenFileLine("alice", "a-secret"), "\nbob:1234\n"));
  const absl::Status reload = auth.Reload();
  EXPECT_EQ(reload.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(reload.message()), HasSubstr("line 2: the digest must be 64 hex"));
  Write(absl::StrCat(*TokenFileLine("alice", "x"), "\n", *TokenFileLine("bob", "x"), "\n"));
  EXPECT_THAT(std::string(auth.Reload().message()), HasSubstr("line 2: the same token"));
  EXPECT_EQ(auth.Authenticate("Bearer a-secret", "")->id, "alice");
  std::filesystem::remove(path_);
  EXPECT_EQ(auth.Reload().code(), absl::StatusCode::kNotFound);
}

TEST_F(AuthenticatorTest, CertificatesNameTenantsWithoutATokensFile) {
  Authenticator auth("", true);
  EXPECT_EQ(auth.Authenticate(std::nullopt, "alice")->id, "alice");
  EXPECT_EQ(auth.Authenticate(std::nullopt, "").status().code(),
            absl::StatusCode::kUnauthenticated);
  Authenticator open("", false);
  EXPECT_FALSE(open.required());
  EXPECT_EQ(open.Authenticate(std::nullopt, "")->id, "");
}

// Nothing limited how fast one address could guess tokens. Now 20 failures a minute, then
// refused without the token being looked at; a good token from that address is refused too
// until the window ends, and other addresses are not affected.
TEST(FailedAuthLimiterTest, AnAddressThatFailsTooOftenIsRefusedForAWhile) {
  FailedAuthLimiter limiter({.max_failures = 3, .window = absl::Seconds(60)});
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limiter.Admit("10.0.0.7", t0).ok());
    limiter.Failed("10.0.0.7", t0);
  }
  const absl::Status refused = limiter.Admit("10.0.0.7", t0 + absl::Seconds(10));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("try again in 50s"));
  EXPECT_TRUE(limiter.Admit("10.0.0.8", t0).ok());
  EXPECT_TRUE(limiter.Admit("10.0.0.7", t0 + absl::Seconds(61)).ok());
}

TEST(FailedAuthLimiterTest, ClientAddressesDropThePort) {
  EXPECT_EQ(ClientAddress("ipv4:10.0.0.7:5123"), "10.0.0.7");
  EXPECT_EQ(ClientAddress("ipv6:[::1]:5123"), "::1");
  EXPECT_EQ(ClientAddress("10.0.0.7"), "10.0.0.7");
  EXPECT_EQ(ClientAddress("::1"), "::1");
}

}  // namespace
}  // namespace kiln::server
